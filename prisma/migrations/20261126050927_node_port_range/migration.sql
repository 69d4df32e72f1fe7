-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "portMax" INTEGER,
ADD COLUMN     "portMin" INTEGER;
